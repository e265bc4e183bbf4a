"""One module per app tab. Each has `TITLE` (the tab label) and `build()`, called inside a `gr.Tab`.

A new tab (upscale, deblur, style) is one module here plus one entry in `app.TABS`.
"""
