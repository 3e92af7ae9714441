"""lb.match: sample fetches, match methods, ACLs/conditions and log-format strings.

Layer L1 (pure): modules here import only the standard library and each other
(``sample`` ← ``pattern`` ← ``acl``; ``fmt`` uses ``sample``). Import the submodules
directly (``from lb.match import acl``); this package has no side effects.
"""
