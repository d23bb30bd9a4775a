"""CrossGuard policy pack for the appointment-booking platform; one module per area."""
