from dhlive_cli.cli import main

main()
