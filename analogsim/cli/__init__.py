"""The ``analogsim`` command line: one module per subcommand."""
