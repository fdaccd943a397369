"""Reference implementations of what students build (staff side only, never released).

Every hidden check compares students to these and to the frameworks' own ops. The package is
not in the course wheel: staff environments import it from the course root.
"""
