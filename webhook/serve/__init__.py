"""The composition root of ``edgewarden serve``: runs the built server and supervises every
background task beside it."""
