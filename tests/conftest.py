"""Shared test settings.

Hypothesis runs derandomized in CI (CI=true) so a red build is reproducible from its log, and
without deadlines because the CI machine is shared and slow timing is not a failure of behaviour.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
