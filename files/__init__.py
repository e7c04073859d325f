"""Files and images that users upload to send in messages (PROTOCOL.md §6.3).

Uploads are checked by their content, images decoded and re-encoded without metadata,
everything kept through Django's storage API (a directory or an S3-compatible bucket)
and served at an unguessable URL. `files.services` is what the chat app calls.
"""
