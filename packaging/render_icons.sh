#!/usr/bin/env bash
# Render the application icon's PNG sizes and the Windows .ico from resources/icons/edgeapp.svg.
# Needs rsvg-convert (apt: librsvg2-bin) and, for the .ico, ImageMagick's convert.
# Usage: packaging/render_icons.sh   (run again after editing the SVG; commit the results)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../resources/icons"
SIZES=(16 24 32 48 64 128 256 512)
for size in "${SIZES[@]}"; do
  rsvg-convert --width "$size" --height "$size" edgeapp.svg --output "edgeapp-$size.png"
done
convert edgeapp-16.png edgeapp-24.png edgeapp-32.png edgeapp-48.png edgeapp-64.png \
  edgeapp-256.png edgeapp.ico
echo "rendered ${SIZES[*]} and edgeapp.ico in $(pwd)"
