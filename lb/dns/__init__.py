"""DNS wire format: queries out, answers in, for the resolvers."""
