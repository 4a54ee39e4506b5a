"""Policy test suites (``*.test.yaml``): parse them, run them through the engine, report."""
