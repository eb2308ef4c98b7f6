"""The pure numerical core: network graphs as static structure plus weight pytrees, run with JAX.

Nothing here touches files, images or logging; it imports only jax and numpy.
"""
