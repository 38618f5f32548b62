"""Seeing runs: the local web app (``xp ui``), the self-contained HTML report (``xp report``,
``xp diff --html``) and metric plots (``xp plot``, ``xp.plot``).

``documents`` builds the JSON the pages read (docs/ui.md), over the query index, the records,
the journals of live runs and the artifact cache; ``server`` serves it and the front end in
``static/`` (plain ES modules, uPlot vendored), read-only; ``report`` inlines the same modules
and data into one HTML file. Everything here is imported only by those commands, so it costs
``xp --help`` nothing.
"""
