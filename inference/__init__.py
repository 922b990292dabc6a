"""Running trained networks on whole images: tiles, exact bands, fast ESPCN, video, metrics and scoring."""
