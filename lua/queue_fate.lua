-- include: prelude, queue
-- queue_fate.lua: the mark of one join whose place has been served (admitted
-- until, or skipped). KEYS: [1] marks  ARGV[1] join number. Returns the mark.
return mark_of(KEYS[1], tonumber(ARGV[1]))
