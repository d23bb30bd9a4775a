"""The releases room: moving traffic to a Worker version and back.

The deployment hooks `pulumi up` runs, the canary, promotion, rollback, the post-deploy watch and
the quarantine of bundles that failed; `bookingctl release`. The top room: it uses all the others.
"""
