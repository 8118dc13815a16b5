-- dead_letter_add. ARGV: data, reason, time, priority. Returns the id.
return add_dead(ARGV[1], ARGV[2], ARGV[3], ARGV[4])
