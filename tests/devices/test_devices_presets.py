"""Device models: presets, per-field validation, ``scaled``, dict round trip, packed physics."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest

from analogsim import devices
from analogsim.devices import ECRAM, PCM, PRESETS, DeviceModel, Ideal, ReRAM
from analogsim.devices.pcm import NANDAKUMAR_PROGRAMMING
from analogsim.errors import ParameterError
from analogsim.kernels import physics as P

PRESET_CLASSES = [Ideal, PCM, ReRAM, ECRAM]


def _physical_fields(cls: type[DeviceModel]) -> list[dataclasses.Field]:
    return [spec for spec in dataclasses.fields(cls) if "unit" in spec.metadata]


def _out_of_range_values(spec: dataclasses.Field) -> list[object]:
    """Values just outside a field's declared range (and of the wrong kind)."""
    meta = spec.metadata
    low, high, closed = meta["low"], meta["high"], meta["closed"]
    values: list[object] = []
    if low is not None:
        values.append(low - 1 if closed in ("both", "left") else low)
    if high is not None:
        values.append(high + 1 if closed in ("both", "right") else high)
    values.append("1" if not meta["integer"] else 2.5)
    if not meta["integer"]:
        values.append(math.nan)
    return values


FIELD_CASES = [
    pytest.param(cls, spec.name, value, id=f"{cls.__name__}-{spec.name}-{value!r}")
    for cls in PRESET_CLASSES
    for spec in _physical_fields(cls)
    for value in _out_of_range_values(spec)
]


# --------------------------------------------------------------------------- construction
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_constructs_with_defaults(name: str) -> None:
    model = devices.preset(name)
    assert type(model) is PRESETS[name]
    assert model == PRESETS[name]()
    assert devices.preset(name.upper()) == model


@pytest.mark.parametrize("cls", PRESET_CLASSES)
def test_every_physical_field_documents_a_unit(cls: type[DeviceModel]) -> None:
    for spec in _physical_fields(cls):
        assert spec.metadata["unit"] and spec.metadata["doc"], spec.name
    assert spec.name in cls.describe()


def test_preset_passes_overrides() -> None:
    model = devices.preset("ReRAM", dw_min=0.001, g_max=30.0)
    assert isinstance(model, ReRAM)
    assert (model.dw_min, model.g_max) == (0.001, 30.0)


def test_models_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError, match="g_max"):
        PCM().g_max = 10.0  # type: ignore[misc]


def test_unknown_preset_names_the_choices_and_the_value() -> None:
    with pytest.raises(ParameterError, match=r"The 'name' parameter of preset must be one of "
                                             r"'ideal', 'pcm', 'reram', 'ecram'\. Got 'flash'"):
        devices.preset("flash")


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("cls", "field_name", "value"), FIELD_CASES)
def test_out_of_range_field_is_rejected_by_name(cls: type[DeviceModel], field_name: str,
                                                value: object) -> None:
    pattern = (rf"The '{field_name}' parameter of {cls.__name__} must be .* "
               rf"Got {re.escape(repr(value))} instead")
    with pytest.raises(ParameterError, match=pattern):
        cls(**{field_name: value})


def test_negative_g_max_message_states_the_range() -> None:
    with pytest.raises(ParameterError, match=r"The 'g_max' parameter of PCM must be a real "
                                             r"number in \(0, inf\)\. Got -25\.0 instead"):
        PCM(g_max=-25.0)


def test_stuck_fractions_may_not_sum_above_one() -> None:
    with pytest.raises(ParameterError, match=r"'stuck_at_gmin \+ stuck_at_gmax' parameter of "
                                             r"ReRAM .*Got 1\.2"):
        ReRAM(stuck_at_gmin=0.6, stuck_at_gmax=0.6)


@pytest.mark.parametrize("field_name", ["drift_nu", "drift_nu_dtod", "up_down", "up_down_dtod",
                                        "w_min_dtod", "gamma_down"])
def test_pcm_rejects_fields_its_model_does_not_use(field_name: str) -> None:
    with pytest.raises(ParameterError, match=rf"PCM does not use '{field_name}'.*got 0\.05"):
        PCM(**{field_name: 0.05})


@pytest.mark.parametrize("field_name", ["stuck_at_gmin", "stuck_at_gmax", "drift_nu",
                                        "drift_nu_dtod"])
def test_ideal_rejects_faults_and_drift(field_name: str) -> None:
    with pytest.raises(ParameterError, match=rf"The '{field_name}' parameter of Ideal must be "
                                             rf"0 .*Got 0\.1 instead"):
        Ideal(**{field_name: 0.1})


def test_pcm_reset_state_must_be_zero() -> None:
    with pytest.raises(ParameterError, match=r"The 'w_min' parameter of PCM .*Got -0\.5"):
        PCM(w_min=-0.5)


# --------------------------------------------------------------------------- scaled
def _groups(model: DeviceModel) -> dict[str, tuple[str, ...]]:
    groups = dict(model.noise_groups)
    groups["dtod"] = tuple(spec.name for spec in dataclasses.fields(model)
                           if spec.name.endswith("_dtod"))
    return groups


SCALE_CASES = [pytest.param(cls, group, id=f"{cls.__name__}-{group}")
               for cls in PRESET_CLASSES for group in _groups(cls())]


@pytest.mark.parametrize(("cls", "group"), SCALE_CASES)
def test_scaled_multiplies_exactly_the_fields_of_its_group(cls: type[DeviceModel],
                                                           group: str) -> None:
    model = cls()
    changed = model.scaled(**{group: 0.5})
    in_group = set(_groups(model)[group])
    assert in_group, group
    for spec in dataclasses.fields(model):
        before, after = getattr(model, spec.name), getattr(changed, spec.name)
        expected = before * 0.5 if spec.name in in_group else before
        assert after == expected, spec.name
    assert type(changed) is cls


def test_scaled_named_groups_hit_the_documented_fields() -> None:
    pcm = PCM(prog_noise_std=0.01)
    assert pcm.scaled(programming=2.0).prog_noise_scale == 2.0
    assert pcm.scaled(programming=2.0).prog_noise_std == 0.02
    assert pcm.scaled(read=0.0).read_noise_scale == 0.0
    assert pcm.scaled(drift=3.0).drift_scale == 3.0
    assert pcm.scaled(update=2.0).dw_min_std == 2.0
    reram = ReRAM()
    dtod = reram.scaled(dtod=0.5)
    assert (dtod.dw_min_dtod, dtod.w_max_dtod, dtod.w_min_dtod) == (0.15, 0.12, 0.2)
    assert dtod.dw_min == reram.dw_min and dtod.read_noise_std == reram.read_noise_std
    assert reram.scaled(read=2.0, drift=0.0).read_noise_std == 0.02
    assert reram.scaled(read=2.0, drift=0.0).drift_nu == 0.0


def test_scaled_rejects_unknown_groups() -> None:
    with pytest.raises(TypeError, match=r"ReRAM\.scaled\(\) got an unknown noise group "
                                        r"'thermal'; allowed: 'drift', 'dtod', 'programming'"):
        ReRAM().scaled(thermal=2.0)


def test_scaled_rejects_negative_factors() -> None:
    with pytest.raises(ParameterError, match=r"The 'read' parameter of PCM\.scaled must be .*"
                                             r"Got -1\.0 instead"):
        PCM().scaled(read=-1.0)


def test_scaled_result_is_validated() -> None:
    with pytest.raises(ParameterError, match=r"The 'w_min_dtod' parameter of ReRAM .*Got 1\.2"):
        ReRAM().scaled(dtod=3.0)


# --------------------------------------------------------------------------- dict round trip
ROUND_TRIP_MODELS = [Ideal(), PCM(), ReRAM(), ECRAM(), PCM(n_levels=16, read_noise_scale=0.5),
                     ReRAM(g_max=12.5, stuck_at_gmax=0.1), Ideal(read_noise_std=0.01)]


@pytest.mark.parametrize("model", ROUND_TRIP_MODELS, ids=repr)
def test_to_dict_from_dict_round_trip(model: DeviceModel) -> None:
    values = model.to_dict()
    assert values["kind"] == type(model).__name__
    assert devices.from_dict(values) == model
    assert values["kind"] == type(model).__name__  # from_dict leaves its input alone
    assert devices.from_dict(json.loads(json.dumps(values))) == model


def test_from_dict_rejects_unknown_kind() -> None:
    with pytest.raises(ParameterError, match=r"The 'name' parameter of preset .*Got 'memristor'"):
        devices.from_dict({"kind": "Memristor", "g_max": 1.0})


def test_from_dict_validates_values() -> None:
    values = PCM().to_dict()
    values["g_max"] = -1.0
    with pytest.raises(ParameterError, match=r"The 'g_max' parameter of PCM .*Got -1\.0"):
        devices.from_dict(values)


# --------------------------------------------------------------------------- physics packing
@pytest.mark.parametrize("model", ROUND_TRIP_MODELS, ids=repr)
def test_physics_packs_into_the_kernel_vector(model: DeviceModel) -> None:
    physics = model.physics()
    packed = physics.pack()
    assert packed.shape == (P.PACKED_LENGTH,)
    assert packed.dtype == np.float64
    assert packed[P.P_DEVICES] == model.devices_per_weight
    assert packed[P.P_RULE] == int(model.update_rule)
    assert packed[P.P_GMAX] == model.g_max
    assert packed[P.P_DW] == pytest.approx(model.dw_min * model.g_max)
    assert packed[P.P_DW_STD] == model.dw_min_std
    assert packed[P.P_LEVELS] == (model.n_levels or 0)
    assert packed[P.P_T0] == model.drift_t0
    assert (packed[P.P_GAMMA_UP], packed[P.P_GAMMA_DOWN]) == (model.gamma_up, model.gamma_down)


def test_linear_step_physics_is_state_independent() -> None:
    packed = ReRAM().physics().pack()
    assert packed[P.P_PROG0] == pytest.approx(0.03 * 40.0)
    assert (packed[P.P_PROG1], packed[P.P_PROG2], packed[P.P_Q0]) == (0.0, 0.0, 0.0)
    assert packed[P.P_READ] == pytest.approx(0.01 * 40.0)
    assert packed[P.P_MU_B] == packed[P.P_MU_LO] == packed[P.P_MU_HI] == 0.01
    assert packed[P.P_SD_B] == packed[P.P_SD_LO] == packed[P.P_SD_HI] == 0.005
    assert math.isinf(packed[P.P_REFRESH])


def test_pcm_physics_carries_the_nandakumar_fit() -> None:
    packed = PCM(g_max=50.0, prog_noise_scale=2.0, drift_scale=0.5).physics().pack()
    c0, c1, c2 = NANDAKUMAR_PROGRAMMING
    factor = 50.0 / 25.0 * 2.0
    np.testing.assert_allclose(packed[[P.P_PROG0, P.P_PROG1, P.P_PROG2]],
                               [c0 * factor, c1 * factor, c2 * factor])
    np.testing.assert_allclose(packed[[P.P_MU_A, P.P_MU_B, P.P_MU_LO, P.P_MU_HI]],
                               np.array([-0.0155, 0.0244, 0.049, 0.1]) * 0.5)
    np.testing.assert_allclose(packed[[P.P_SD_A, P.P_SD_B, P.P_SD_LO, P.P_SD_HI]],
                               np.array([-0.0125, -0.0059, 0.008, 0.045]) * 0.5)
    np.testing.assert_allclose(packed[[P.P_Q0, P.P_QEXP, P.P_QMAX, P.P_TREAD]],
                               [0.0088, 0.65, 0.2, 250e-9])
    assert (packed[P.P_LEVEL_LO], packed[P.P_LEVEL_HI]) == (0.0, 50.0)
    assert packed[P.P_REFRESH] == 0.9
