#!/usr/local/cpanel/3rdparty/bin/perl
# Tidemark's cPanel (Jupiter) page. cPanel runs it as the account's own Unix user, so
# the bridge will prove who it is by what only that uid can do (a one-time token in a
# file the kernel marks as owned by it), never by a name the browser could send.
# That handshake comes with the web sessions; until then the page says so.
use strict;
use warnings;

my $user = getpwuid($<);
$user = '' unless defined $user;
print "Status: 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n\r\n";
print "Tidemark: restoring from this page is not available yet ($user). Ask your provider for a restore meanwhile.\n";
exit 0;
