"""xp's git hooks: installing the shims and what each hook does."""
