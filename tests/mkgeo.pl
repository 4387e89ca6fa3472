#!/usr/bin/perl
# Writes a small MaxMind DB (GeoIP2 City layout) for tests and the demo:
#   perl tests/mkgeo.pl OUT
#   127.0.1.0/24   CN, subdivision BJ        (CN-BJ)   Asia/Shanghai
#   127.0.2.0/24   DE, no subdivision                  Europe/Berlin
#   127.0.3.0/24   GB, subdivisions ENG, LND (GB-ENG, GB-LND: two levels), no time zone
#   2001:db8::/32  US, subdivision CA        (US-CA)   America/Los_Angeles
# (the time zone is the City layout's location.time_zone: `tz: peer` windows)
# Everything else is unknown to it. MaxMind::DB::Writer drops reserved
# networks (loopback, documentation ranges) unless told not to. IPv4 lives
# at ::a.b.c.d; ::ffff:a.b.c.d is deliberately not aliased, so a reader
# must look IPv4-mapped addresses up as IPv4 itself.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out = shift @ARGV or die "usage: $0 OUT\n";
my %types = (
    country      => 'map',
    subdivisions => [ 'array', 'map' ],
    iso_code     => 'utf8_string',
    names        => 'map',
    en           => 'utf8_string',
    location     => 'map',
    time_zone    => 'utf8_string',
);
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => 'upgate-test-City',
    languages                => ['en'],
    description              => { en => 'upgate test regions' },
    map_key_type_callback    => sub { $types{ $_[0] } },
    remove_reserved_networks => 0,
);
my @places = (
    [ '127.0.1.0/24',  'CN', ['BJ'], 'Asia/Shanghai' ],
    [ '127.0.2.0/24',  'DE', [], 'Europe/Berlin' ],
    [ '127.0.3.0/24',  'GB', [ 'ENG', 'LND' ], undef ],
    [ '2001:db8::/32', 'US', ['CA'], 'America/Los_Angeles' ],
);
for my $p (@places) {
    my ( $net, $country, $subs, $zone ) = @$p;
    my %rec = ( country => { iso_code => $country, names => { en => $country } } );
    $rec{subdivisions} = [ map { { iso_code => $_ } } @$subs ] if @$subs;
    $rec{location} = { time_zone => $zone } if defined $zone;
    $tree->insert_network( $net, \%rec );
}
open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
