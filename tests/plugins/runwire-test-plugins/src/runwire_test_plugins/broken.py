raise RuntimeError("this plugin module fails as it is imported")
