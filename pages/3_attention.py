"""Lesson 3: Attention."""
import streamlit as st

import ui

ui.page_setup()
ui.lesson_header(3, "Attention", "This lesson is being built.")
