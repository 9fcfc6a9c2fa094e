"""This project's own deploys (a package named `deploys`, like the library's)."""
