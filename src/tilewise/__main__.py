"""``python -m tilewise``: the same as the ``tilewise`` command."""

from tilewise.cli.main import main

if __name__ == "__main__":
    main()
