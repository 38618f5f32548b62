"""Tests of src/xp/tracking/."""
