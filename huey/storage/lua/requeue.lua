-- requeue. ARGV: token. Returns 1 when the token was reserved, else 0.
if return_reserved(ARGV[1]) then
  return 1
end
return 0
