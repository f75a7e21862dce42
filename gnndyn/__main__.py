from gnndyn.cli import main

main()
