"""`python -m qabot`: the `qabot` command line, for when the console script is not on PATH."""

from .cli import main

if __name__ == "__main__":
    main()
