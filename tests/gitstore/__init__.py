"""Tests of src/xp/gitstore/."""
