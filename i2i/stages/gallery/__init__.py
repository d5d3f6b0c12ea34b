"""The static gallery: an index page and one page per album, for every target.

Pages come from the Jinja2 templates in ``i2i/templates`` (autoescaped) with their CSS and
script inlined: no external assets, no fonts, no network. Every link is relative, so the same
folder works from ``file://`` and from an S3 website. Every name here is a key at the target:
the index is ``<prefix>/index.html`` (``index.html`` for a ``file://`` target, whose prefix is
empty). An album page sits in the folder its images share (``<folder>/index.html``); when that
folder is not the album's own, it goes to ``<prefix>/_albums/<album>.html`` instead.

An album page shows each photo under a human title (its Photos ``title``, else the file's XMP
dc:title, IPTC ObjectName, EXIF XPTitle or ImageDescription, else a tidied file name) with a
date in ``gallery.locale`` (or the album's ``gallery.album_locales`` entry), its place once, a
camera, lens and exposure line, and a web-sized copy of its original (``<photo>.original.webp``)
beside its styles, all whole (never cropped: the watermark caption stays in view) in justified
rows. Every image has smaller sizes for ``srcset``; a click opens a full-size viewer over the
page (next and previous, arrow keys, Escape, swipes on phones, a link back to the album).
Derived images live in a ``_gallery`` folder next to the published image they come from, one
level deeper than any image key, so they are never mistaken for published images. The index
shows a cover per album (the whole image fitted in a 3:2 box): the photo named in
``gallery.covers``, else the album's first favourite, else its first photo's original; the
album's rule writes it at a key the index knows from the inventory alone, so the index never
waits for an album. The footer credits what the published images' EXIF Copyright says
(``watermark.copyright``, ``watermark.artist``), never the brand.

Names, titles and places are text: escaped, their control characters and bidi overrides
dropped, each isolated for right-to-left scripts; every key is checked to stay inside the
gallery's folder and the target's prefix.

For a target that is not a local folder (``s3://``) the gallery is built in a local folder laid
out like the target (the published images are read from the workflow's finals) and every file a
build wrote is uploaded the way images are published (:func:`upload_site`): pages with
``publish.page_cache_control``, images with ``publish.cache_control``, each with its
Content-Type and its sha256, so a file that already matches is not uploaded again.

Builds are deterministic: the same catalog, originals and settings give the same bytes.
"""
