"""The metadata stage: EXIF, GPS, dimensions and checksum of one photo as normalised JSON.

One module per section: :mod:`.values` turns EXIF values into numbers, text and ISO 8601 dates;
:mod:`.problems` records what Pillow and pillow-heif warn about as a record's problems;
:mod:`.fields` builds a record's ``exif`` and ``gps`` sections; :mod:`.read` reads one photo
(:func:`~i2i.stages.metadata.read.read_metadata`); :mod:`.record` answers what other stages ask
of a record (:func:`~i2i.stages.metadata.record.photos_info`,
:func:`~i2i.stages.metadata.record.has_position`).

Nothing is imported here: importing a module runs this file, and the code digest of a rule
follows imports, so a stage that only reads records (places, captions) has no EXIF parsing in
its digest.
"""
