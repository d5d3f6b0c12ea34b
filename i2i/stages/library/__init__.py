"""The library stage: album folders (``albums``), the Apple Photos export into them
(``apple_photos``, ``osxphotos_folders``) and the inventory of what there is (``inventory``)."""
