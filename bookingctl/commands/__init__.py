"""One module per command group; `bookingctl/cli.py` assembles them."""
