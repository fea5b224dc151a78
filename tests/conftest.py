"""Settings shared by every test tier: the Hypothesis profile of this run's size."""

from tests.hypothesis_profiles import load_profile

load_profile()
