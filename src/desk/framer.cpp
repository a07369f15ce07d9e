// Line framing with a hard cap: memory per connection stays below max_line however the peer
// splits or stretches its lines.
#include "switchboard/desk/codec.hpp"

namespace switchboard::desk {

line_framer::frame line_framer::next(std::string_view& input) {
  if (clear_partial_) {
    partial_.clear();
    clear_partial_ = false;
  }
  while (!input.empty()) {
    const auto newline = input.find('\n');
    if (discarding_) {
      if (newline == std::string_view::npos) {
        input = {};
        return {};
      }
      input.remove_prefix(newline + 1);
      discarding_ = false;
      continue;
    }
    if (newline == std::string_view::npos) {
      if (input.size() > max_line_ - partial_.size()) {
        partial_.clear();
        discarding_ = true;
        input = {};
        return {status::too_long, {}};
      }
      partial_.append(input);
      input = {};
      return {};
    }
    if (newline > max_line_ - partial_.size()) {
      partial_.clear();
      input.remove_prefix(newline + 1);
      return {status::too_long, {}};
    }
    std::string_view line;
    if (partial_.empty()) {
      line = input.substr(0, newline);  // the whole line is in this input: no copy
    } else {
      partial_.append(input.substr(0, newline));
      line = partial_;
      clear_partial_ = true;
    }
    input.remove_prefix(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {  // blank line: nothing refers to partial_ any more
      partial_.clear();
      clear_partial_ = false;
      continue;
    }
    return {status::line, line};
  }
  return {};
}

}  // namespace switchboard::desk
