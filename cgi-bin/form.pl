#!/usr/bin/perl
# A form without modules: GET shows the form, POST (or GET with a query) echoes the fields.
use strict;
use warnings;

sub unescape { my $s = shift; $s =~ tr/+/ /; $s =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge; return $s; }
sub html { my $s = shift; $s =~ s/&/&amp;/g; $s =~ s/</&lt;/g; $s =~ s/>/&gt;/g; $s =~ s/"/&quot;/g; return $s; }

my $data = $ENV{QUERY_STRING} // '';
if (($ENV{REQUEST_METHOD} // '') eq 'POST') {
    read(STDIN, $data, $ENV{CONTENT_LENGTH} // 0);
}
print "Content-Type: text/html; charset=utf-8\r\n\r\n";
print "<!doctype html><title>form</title>\n";
print "<form method=\"post\"><input name=\"name\"> <input name=\"color\"> <button>send</button></form>\n";
for my $pair (split /&/, $data) {
    next if $pair eq '';
    my ($k, $v) = map { unescape($_ // '') } split /=/, $pair, 2;
    print "<p>", html($k), " = ", html($v), "</p>\n";
}
