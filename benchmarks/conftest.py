from tests.conftest import engine, kb  # noqa: F401  (the same fixtures as the tests)
