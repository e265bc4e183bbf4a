"""One module per app tab: `TITLE` (the tab label), `build()` (called inside a `gr.Tab`), optional `CSS`.

A new tab (upscale, deblur, style) is one module here plus one entry in `app.TABS`.
"""
