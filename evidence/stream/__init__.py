"""Recording live streams (HLS, DASH, progressive media) as evidence packages of kind ``stream``.

``playlists`` reads what the server lists, ``recorder`` follows it and logs each segment as it
arrives, ``recording`` keeps a recording's parts on disk so a killed process can be picked up,
``remux`` derives the viewing copy with ffmpeg, and ``package`` seals a part into a signed package.
"""
