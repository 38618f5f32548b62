"""Tests of xp.ui: the documents, the server, reports, plots and the pages in a browser."""
