from gitjit.cli.app import main

main()
