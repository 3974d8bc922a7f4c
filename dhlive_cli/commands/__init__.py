"""One module per subcommand; heavy imports happen inside the command functions."""
