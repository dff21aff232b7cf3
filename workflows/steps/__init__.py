"""The steps requests run: the machinery every step table shares (context, spec, runner,
policy, tables) and the steps themselves, one module per concern."""
