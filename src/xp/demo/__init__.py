"""``xp demo``: a small scikit-learn project with a few real runs in it."""
