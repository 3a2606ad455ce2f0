"""issm_bridge: drive ISSM through MATLAB (or GNU Octave) for fdassim.

It reaches fdassim only through fdassim's Model protocol.
"""

__version__ = "0.1.0"
