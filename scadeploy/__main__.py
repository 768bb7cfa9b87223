from scadeploy.cli import main

main()
