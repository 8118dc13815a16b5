-- requeue. ARGV: token, count_delivery (1, or 0 to take the delivery back),
-- owner ('' for any). Returns 1 when the token was reserved, else 0.
if return_reserved(ARGV[1], ARGV[3]) then
  uncount_delivery(ARGV[1], ARGV[2])
  return 1
end
return 0
