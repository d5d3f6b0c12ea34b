"""The workflow's stages, one module or small package each, in the order a photo meets them:
``library`` (album folders, the Photos export, the inventory), ``metadata``, ``places``,
``captions``, ``preprocess``, ``stylize``, ``watermark``, ``publish``, ``gallery``, ``catalog``,
``contact_sheet``, ``report``; and ``audit``, ``archive``, ``fallbacks`` for the commands that
look after a run's outputs. Stage code imports ``i2i.core``, ``i2i.backends`` and
``i2i.targets``, never the run machinery (``i2i.run``)."""
