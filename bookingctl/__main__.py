"""`python -m bookingctl` is the same as the `bookingctl` console script."""

from bookingctl.cli import main

main()
