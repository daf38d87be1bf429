"""The embedded recommendation engine behind the `local` provider (numpy/scipy; never in Lambda)."""
