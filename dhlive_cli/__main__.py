from dhlive_cli.entry import main

main()
